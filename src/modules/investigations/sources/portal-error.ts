// The Portal client's failures, in their own file: the client and its agency directory both raise them.
export class PortalError extends Error {
  override name = 'PortalError';
  constructor(
    message: string,
    readonly code:
      | 'PORTAL_HTTP_ERROR'
      | 'PORTAL_RATE_LIMITED'
      | 'PORTAL_TIMEOUT'
      | 'PORTAL_NETWORK'
      | 'PORTAL_BAD_RESPONSE'
      /** The query names no agency, or one the Portal does not list: its message is for the user. */
      | 'PORTAL_NEEDS_AGENCY'
      | 'PORTAL_AGENCY_NOT_FOUND',
    readonly status?: number,
  ) {
    super(message);
  }
}
