"""Chat: a model-driven tool loop over the same tools MCP buyers call.

The model is a protocol (``ChatModel``) so the loop, storage and REST surface never depend
on a provider; tools run through ``ToolExecutor`` so chat can do exactly what the
caller's token can do over MCP, and nothing more."""
