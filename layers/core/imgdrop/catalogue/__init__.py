"""What a tenant has: images (read, change, delete, near-duplicates), their listing and
presentation, albums and tags."""
