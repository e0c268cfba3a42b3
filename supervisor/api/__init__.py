"""Generated from protos/hawser/ by `make protos`: do not edit."""
