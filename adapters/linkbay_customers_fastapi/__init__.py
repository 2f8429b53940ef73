"""FastAPI adapter: ``create_customer_router(...)``, problem+json errors, tenancy helpers."""
