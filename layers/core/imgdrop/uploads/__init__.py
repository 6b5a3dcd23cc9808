"""How bytes come in: presigned uploads (presign), bytes in the request (direct) and the
multipart/form-data parser (form)."""
