"""One adapter per external system. Connectors translate; they never touch the database."""
