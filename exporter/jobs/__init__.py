"""The jobs behind scripts/main.sh and the release job's named, timed steps."""
