"""What a page shows: view records built from a link and its replayed trace, ready to render.

- `links` — share links (DESIGN.md §5): encode and decode the scenario, policy and step;
- `runs` — replaying a link's scenario once per request, with the run memo;
- `sim` — the simulator page; `compare` — one scenario under several eras;
  `presets` — every preset under every era; `errors` — pages for links that cannot be read;
- `actions` — the next-command buttons; `tables` — a step's state in words;
- `lab` — the policy lab's pages; `lab_answer` — the sweep's answer in sentences; `lab_store` —
  the sweep, stored once per deployment and read by every worker.

May import `app.picture` and the engine; never `app.http` (no request, no response, no
template here), so every view can be built and tested without a server
(tests/app/test_layering.py checks).
"""
