"""HTTP edge of the platform: dependencies, error model, middleware, health, metrics, docs."""
