"""cowlab's front ends: the web app, the command line, the picture, the kernel probe.

Nothing here knows a kernel rule: the engine decides, this package draws, links and measures.
Each subpackage names its job and says in its docstring what it may import:

- `app.http` — the FastAPI application: factory, middleware, routes, template rendering;
- `app.views` — what a page shows, as plain records built from a replayed trace;
- `app.picture` — the diagram of one step: layout, scene, labels and its SVG;
- `app.cli` — the `cowlab` command and the narration of traces for a terminal;
- `app.probe` — scenarios run on the running kernel, compared with the simulator;
- `app.cexport` — a scenario as a C program that runs it on any kernel (`cowlab export c`);
- `app.deploy` — nginx in front of the workers, for a class server;
- `app.bench` — the figures of DESIGN.md §7 (`cowlab bench`, `cowlab bench --load`);
- `app.paths` — where the templates and static files are, in a wheel and in a checkout.
"""
