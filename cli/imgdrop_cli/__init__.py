"""imgdrop's command-line client: mint local tokens, upload files and folders, read images."""

__all__ = ["__version__"]

__version__ = "0.1.0"
