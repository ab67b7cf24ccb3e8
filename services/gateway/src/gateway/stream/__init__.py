"""The live event stream (``GET /v1/stream``): ticket and SLA events an agent may see, as SSE."""
