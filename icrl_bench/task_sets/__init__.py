"""Published task sets shipped as data (JSON), used by the registry's ``"reference"`` splits."""
