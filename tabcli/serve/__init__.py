"""`tabcli serve`: a trained run answering predictions over HTTP (FastAPI + uvicorn; pip install 'tabcli[serve]')."""
