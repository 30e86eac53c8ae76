"""The replies the gateway itself gives SMTP clients, by name.

Each is the exact line on the wire (code, enhanced status code, text). Replies that carry the
upstream's words or a queue id are built where they are sent (`gateway.actions.execute`).
"""

from __future__ import annotations

# Sessions
TOO_MANY_CONNECTIONS = "421 4.3.2 Too many connections or shutting down, try again later"
TOO_MANY_FROM_CLIENT = "421 4.7.0 Too many connections from your address, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down"
TIMEOUT = "421 4.4.2 Error: timeout exceeded"
SESSION_ERROR = "421 4.3.0 Temporary local problem, closing connection"

# RCPT TO
RCPT_OK = "250 2.1.5 Ok"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
ROUTING_REFUSED = "550 5.7.1 Routing characters in the local part are not accepted"
NEEDS_SMTPUTF8 = "553 5.6.7 Non-ASCII address needs SMTPUTF8"
RELAY_DENIED = "554 5.7.1 Relay access denied"

# DATA: (code, the rest of the line), as the executor's Outcome carries them
BARE_NEWLINE = (550, "5.5.2 Message contains a bare CR or LF (SMTP smuggling protection)")
PROCESSING_TIMEOUT = (451, "4.3.0 Processing timed out, try again later")
STORE_FAILED = (451, "4.3.0 Temporary failure storing message, try again later")
POLICY_REJECT = (550, "5.7.1 Message refused by district policy")

# Any hook's unexpected error: try again later, never aiosmtpd's default 500, never the
# exception's name.
TEMPFAIL = "451 4.3.0 Temporary local problem, try again later"
