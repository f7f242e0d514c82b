"""Tool use: tool-call parsing, the python / calculator / submit tools, and the tool environment."""
