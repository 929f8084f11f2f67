"""Local stand-ins for the voice providers: real servers on 127.0.0.1 that speak each provider's
wire protocol, so the tests drive the real plugins and SDKs against them."""
