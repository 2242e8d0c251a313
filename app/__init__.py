"""cowlab's web layer: FastAPI routes, view models and the SVG diagram geometry.

Nothing here knows a kernel rule: the engine decides, this package draws and links.
"""
