/** A client error: HTTP 400 / gRPC INVALID_ARGUMENT, naming the bad parameter. */
export class BadRequest extends Error {
  readonly statusCode = 400;
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
  }
}
