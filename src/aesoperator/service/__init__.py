"""Aesoperator as a service (issue 16): the HTTP API, the MCP server and what they share."""
