"""imgdrop: the domain package shared by every imgdrop Lambda function."""

__version__ = "0.1.0"
