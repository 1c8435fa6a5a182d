"""The web app: security core (``engine.web.auth``), the REST/WebSocket API (``engine.web.api``), the
NiceGUI pages and the ``RuntimeControl`` command queue (``engine.web.control``). See docs/web.md."""
