//! `tessera-loadtest`: a load generator for any Matrix homeserver, speaking
//! only the Client-Server API. Built by the loadtest issue.
