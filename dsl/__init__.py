"""The rule DSL: parse -> check -> compile. ``dsl`` never imports ``engine``."""
