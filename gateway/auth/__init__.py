"""Sender authentication of mail from outside trusted_networks: SPF, DKIM, DMARC and ARC over
one configured resolver (`resolver.py`), the Authentication-Results header and the removal of
forged gateway headers (`headers.py`), ARC sealing of the copies the gateway changed
(`seal.py`), and the deadline-bounded daemon side (`service.py`).

The protocols are the libraries' (pyspf, dkimpy, publicsuffixlist); what is ours is the
resolver they share, what each result means for the policy (`verify.py`), and the deadline.
"""
