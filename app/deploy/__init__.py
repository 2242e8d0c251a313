"""Deployment for a class server: nginx in front of the uvicorn workers (docs/deploy.md).

`nginx` renders the configuration from the template shipped with the package (so an installed
cowlab hands it out: `cowlab deploy nginx`), `run` starts and stops an nginx of one's own for
the tests and the load test, and `cli` adds the subcommand.
"""
