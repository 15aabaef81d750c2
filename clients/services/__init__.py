"""One client class per gRPC service, each offering the methods of the engine desk behind it, over the wire."""
