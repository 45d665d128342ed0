/** Prometheus metrics of the HTTP server, in a registry of the app's own. */
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

/**
 * Request count and latency by method, route template and status code.
 *
 * Routes are labelled by their template (e.g. `/items/:id`), never by the raw path, so that
 * the number of time series stays bounded.
 */
export class HttpMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"method" | "route" | "status">;
  private readonly duration: Histogram<"method" | "route">;

  constructor() {
    // Process metrics: CPU, memory, event loop lag, garbage collection.
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: "http_requests_total",
      help: "HTTP requests handled, by method, route and status code.",
      labelNames: ["method", "route", "status"],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: "http_request_duration_seconds",
      help: "Time to handle an HTTP request, by method and route.",
      labelNames: ["method", "route"],
      registers: [this.registry],
    });
  }

  observe(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.duration.observe({ method, route }, seconds);
  }

  /** The content type of `render()`: the Prometheus text format. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric in the registry. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
