"""The PDF text helper: PDFium in a process of its own (`worker`), driven by `client`."""
