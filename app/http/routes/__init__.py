"""Routers: hypermedia pages (`pages`), the JSON API (`api`) and its documentation (`docs`)."""
