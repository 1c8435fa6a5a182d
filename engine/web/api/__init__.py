"""The REST and WebSocket API (FastAPI routers), mounted by ``engine.web.app``."""
