"""Scatterscribe worker: connects to a server, transcribes the slices it is sent, returns their text."""
