/**
 * Errors a caller can act on. Each maps to one HTTP status and one gRPC status code, and names
 * the parameter at fault when there is one.
 */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: 'bad_request' | 'unauthenticated' | 'forbidden' | 'not_found' | 'rate_limited' | 'limit_exceeded' | 'unavailable',
    readonly param: string,
    message: string,
    /** Seconds after which a retry may succeed (429). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** A client error: HTTP 400 / gRPC INVALID_ARGUMENT, naming the bad parameter. */
export class BadRequest extends ApiError {
  constructor(param: string, message: string) {
    super(400, 'bad_request', param, message);
  }
}

/** gRPC status codes (@grpc/grpc-js `status`) for each ApiError code. */
export const GRPC_CODE: Record<ApiError['code'], number> = {
  bad_request: 3, // INVALID_ARGUMENT
  unauthenticated: 16, // UNAUTHENTICATED
  forbidden: 7, // PERMISSION_DENIED
  not_found: 5, // NOT_FOUND
  rate_limited: 8, // RESOURCE_EXHAUSTED
  limit_exceeded: 8, // RESOURCE_EXHAUSTED
  unavailable: 14, // UNAVAILABLE
};
