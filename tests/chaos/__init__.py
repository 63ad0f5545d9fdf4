"""The chaos suite: production mode under load while services, the broker and the database fail."""
