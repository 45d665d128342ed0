// Package server is the HTTP service: probes for Kubernetes, metrics for Prometheus, JSON access
// logs and a graceful shutdown. Add the service's own routes with Handle and HandleFunc.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server routes requests with a ServeMux (Go 1.22 patterns such as "GET /items/{id}"), and
// measures and logs every one of them.
type Server struct {
	mux     *http.ServeMux
	metrics *Metrics
	ready   atomic.Bool
	log     *slog.Logger
	access  *slog.Logger
	errors  *slog.Logger
}

// New returns a server with the probes and /metrics; it logs through handler.
func New(handler slog.Handler) *Server {
	s := &Server{
		mux:     http.NewServeMux(),
		metrics: NewMetrics(),
		log:     named(handler, "server"),
		access:  named(handler, "http.access"),
		errors:  named(handler, "http.server"),
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metrics.Handler())
	return s
}

// Handle registers a route; its pattern, without the method, is the route label of the metrics.
func (s *Server) Handle(pattern string, handler http.Handler) {
	s.mux.Handle(pattern, handler)
}

// HandleFunc registers a route handled by a function, like Handle.
func (s *Server) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	s.mux.HandleFunc(pattern, handler)
}

// Registerer is where the service registers metrics of its own, served on /metrics.
func (s *Server) Registerer() prometheus.Registerer {
	return s.metrics.Registerer()
}

// Ready reports whether /readyz answers 200: from the start of Serve until it begins to stop.
func (s *Server) Ready() bool {
	return s.ready.Load()
}

// Serve answers requests on listener until ctx is done, then stops gracefully: /readyz answers
// 503, no new connection is accepted and the requests in flight have up to timeout to finish.
// It returns nil once they all finished, and an error if the listener failed or the time ran out.
func (s *Server) Serve(ctx context.Context, listener net.Listener, timeout time.Duration) error {
	server := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.errors.Handler(), slog.LevelError),
	}
	// The listener queues connections already: ready and logged before the first is handled.
	s.ready.Store(true)
	s.log.Info("serving HTTP", "address", listener.Addr().String())
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	select {
	case err := <-served:
		s.ready.Store(false)
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("stopping: not ready, waiting for the requests in flight", "timeout", timeout.String())
	stopping, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := server.Shutdown(stopping); err != nil {
		return errors.Join(fmt.Errorf("stopping HTTP: %w", err), server.Close())
	}
	s.log.Info("stopped")
	return nil
}

// ServeHTTP routes the request, then counts, times and logs it, even if its handler panicked.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// The pattern that the mux routes the request to: its path is the route label.
	_, pattern := s.mux.Handler(r)
	recorder := &statusRecorder{ResponseWriter: w}
	defer func() {
		failure := recover()
		status := recorder.status
		switch {
		case failure != nil:
			status = http.StatusInternalServerError
			s.handlePanic(recorder, r, failure)
		case status == 0:
			status = http.StatusOK // nothing written: net/http sends 200
		}
		s.observe(r, routeLabel(pattern), status, time.Since(start))
		if failure == http.ErrAbortHandler {
			panic(failure) // net/http aborts the response, and logs nothing for this value
		}
	}()
	s.mux.ServeHTTP(recorder, r)
}

// handlePanic logs a panic of a handler and answers 500 if the handler had not answered yet.
func (s *Server) handlePanic(w *statusRecorder, r *http.Request, failure any) {
	if failure == http.ErrAbortHandler {
		return
	}
	s.errors.LogAttrs(r.Context(), slog.LevelError, "panic while handling a request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("panic", fmt.Sprint(failure)),
		slog.String("stack", string(debug.Stack())),
	)
	if w.status == 0 {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}
}

// observe counts and times a request in the metrics, and logs it.
func (s *Server) observe(r *http.Request, route string, status int, elapsed time.Duration) {
	s.metrics.Observe(r.Method, route, status, elapsed)
	s.access.LogAttrs(r.Context(), slog.LevelInfo, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, status),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("client", r.RemoteAddr),
	)
}

// healthz is the liveness probe: the process is up and serving requests.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is the readiness probe: serving and not stopping, so it may receive traffic.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.Ready() {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
}

// named is a logger whose records name their origin in the "logger" field, as logs.Named does.
func named(handler slog.Handler, name string) *slog.Logger {
	return slog.New(handler.WithAttrs([]slog.Attr{slog.String("logger", name)}))
}

// writeJSON answers with body as compact JSON, the same bytes as the services in the other
// languages send (no trailing newline).
func writeJSON(w http.ResponseWriter, status int, body map[string]string) {
	encoded, _ := json.Marshal(body) // a map of strings always encodes
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(encoded)
}

// statusRecorder remembers the status code of the response.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 && status >= http.StatusOK { // informational 1xx responses come first
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(body []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(body)
}

// Unwrap gives http.ResponseController the underlying writer (Flush, deadlines...).
func (r *statusRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}
