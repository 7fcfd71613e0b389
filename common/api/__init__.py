"""What every app's REST API shares: errors, throttles, authentication, pagination, schema."""
