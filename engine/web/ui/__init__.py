"""The NiceGUI pages behind the sign-in. Each module with a ``register(ctx)`` function adds its pages;
:func:`engine.web.pages.register_pages` finds them all. ``shell`` holds what every page shares: who is
signed in, the permission check, and the frame with the navigation."""
