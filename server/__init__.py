"""torchloom's backend. Importing this package (or server.engine) must not import Flask."""
