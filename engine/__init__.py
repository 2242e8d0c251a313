"""cowlab's simulation engine: pure, deterministic, no I/O.

`replay(text, policy_id)` parses a scenario and replays it under one kernel policy era.
"""
