"""The ``cantata`` commands: the CLI, the bot runner and console, transcription, captions.

Applications built on the framework's public API. Nothing in the framework
imports this package.
"""
