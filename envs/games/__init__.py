"""Interactive text games with state across turns, each with a scripted optimal player."""
