// Intentionally empty: the package exists only to fetch C sources.
