"""What every layer may use: the error hierarchy, JSON encoding, the upload sandbox and safe file
opening, the caller's scope and user, and the units the command line parses."""
