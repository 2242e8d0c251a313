"""Run scenarios on the running kernel and compare what they observe with the simulator.

- `app.probe.executor` — the coordinator: one real process per scenario process, one real page
  per scenario page, one real pipe / io_uring ring / gup_test pin per reference. It runs in its
  own short-lived subprocess (`run_isolated`) so that a hung or crashed probe can never leave a
  process, a mapping or a file descriptor behind in the caller (the CLI or the web server).
- `app.probe.worker` — the loop each scenario process runs.
- `app.probe.compare` — maps the kernel version to a policy id, replays the same scenario in the
  simulator and compares every observation.
- `app.probe.cli` / `app.probe.web` — the `cowlab probe` subcommand and the web routes.
- `app.probe.vm` — `cowlab probe --kernel IMAGE`: another kernel under QEMU, the scenarios run
  there as `app.cexport`'s static programs, compared as above; `app.probe.kernels` runs every
  preset on Debian's 6.1 and on this kernel and writes docs/probe-kernels.md.

See docs/probe.md for what the probe does and its limits.
"""
