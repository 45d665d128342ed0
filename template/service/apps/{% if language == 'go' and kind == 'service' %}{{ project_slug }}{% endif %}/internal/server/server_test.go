package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects the JSON log lines of a server; safe for the server's goroutines.
type logBuffer struct {
	mu     sync.Mutex
	buffer bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.Write(p)
}

// entries are the log lines decoded, in order.
func (b *logBuffer) entries(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var logged []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buffer.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not a JSON object: %q: %v", line, err)
		}
		logged = append(logged, entry)
	}
	return logged
}

// find is the first log entry with the message, or nil.
func (b *logBuffer) find(t *testing.T, message string) map[string]any {
	t.Helper()
	for _, entry := range b.entries(t) {
		if entry["msg"] == message {
			return entry
		}
	}
	return nil
}

func newServer() (*Server, *logBuffer) {
	logs := &logBuffer{}
	return New(slog.NewJSONHandler(logs, nil)), logs
}

// call sends a request straight to the server's handler.
func call(s *Server, method, path string) *httptest.ResponseRecorder {
	recorder := httptest.NewRecorder()
	s.ServeHTTP(recorder, httptest.NewRequest(method, path, nil))
	return recorder
}

// serve runs Serve on a loopback port until the test stops it; the channel gets its result.
func serve(t *testing.T, ctx context.Context, s *Server, timeout time.Duration) (string, <-chan error) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() { result <- s.Serve(ctx, listener, timeout) }()
	waitFor(t, s.Ready)
	return "http://" + listener.Addr().String(), result
}

func waitFor(t *testing.T, condition func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !condition(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}

// blocking is a route that answers once released, so that a request stays in flight.
func blocking(s *Server) (started <-chan struct{}, release func()) {
	entered, released := make(chan struct{}), make(chan struct{})
	s.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-released
		_, _ = io.WriteString(w, "done")
	})
	return entered, sync.OnceFunc(func() { close(released) })
}

func TestHealthzAnswersOK(t *testing.T) {
	s, _ := newServer()

	response := call(s, http.MethodGet, "/healthz")

	if response.Code != http.StatusOK || response.Body.String() != "{\"status\":\"ok\"}" {
		t.Errorf("GET /healthz = %d %q", response.Code, response.Body)
	}
	if contentType := response.Header().Get("Content-Type"); contentType != "application/json" {
		t.Errorf("Content-Type = %q", contentType)
	}
}

func TestReadyzIsNotReadyBeforeServing(t *testing.T) {
	s, _ := newServer()

	response := call(s, http.MethodGet, "/readyz")

	if response.Code != http.StatusServiceUnavailable || !strings.Contains(response.Body.String(), "not ready") {
		t.Errorf("GET /readyz = %d %q", response.Code, response.Body)
	}
}

func TestServeIsReadyThenFinishesRequestsInFlightWhenStopped(t *testing.T) {
	s, logs := newServer()
	started, release := blocking(s)
	defer release()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	address, stopped := serve(t, ctx, s, 5*time.Second)
	readyz, err := http.Get(address + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = readyz.Body.Close()
	if readyz.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz while serving = %d", readyz.StatusCode)
	}
	inFlight := make(chan string, 1)
	go func() {
		response, err := http.Get(address + "/slow")
		if err != nil {
			inFlight <- err.Error()
			return
		}
		defer func() { _ = response.Body.Close() }()
		body, _ := io.ReadAll(response.Body)
		inFlight <- response.Status + " " + string(body)
	}()
	<-started

	stop()
	waitFor(t, func() bool { return !s.Ready() })

	if code := call(s, http.MethodGet, "/readyz").Code; code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while stopping = %d, want 503", code)
	}
	if code := call(s, http.MethodGet, "/healthz").Code; code != http.StatusOK {
		t.Errorf("GET /healthz while stopping = %d, want 200", code)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if got := <-inFlight; got != "200 OK done" {
		t.Errorf("request in flight got %q", got)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if logs.find(t, "stopped") == nil {
		t.Error(`no "stopped" log entry`)
	}
}

func TestServeGivesUpWhenRequestsOutlastTheTimeout(t *testing.T) {
	s, _ := newServer()
	started, release := blocking(s)
	defer release()
	ctx, stop := context.WithCancel(context.Background())
	address, stopped := serve(t, ctx, s, 50*time.Millisecond)
	go func() {
		if response, err := http.Get(address + "/slow"); err == nil {
			_ = response.Body.Close()
		}
	}()
	<-started

	stop()

	if err := <-stopped; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve = %v, want the shutdown deadline exceeded", err)
	}
}

func TestServeReportsAFailingListener(t *testing.T) {
	s, _ := newServer()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = listener.Close()

	err = s.Serve(context.Background(), listener, time.Second)

	if err == nil || !strings.Contains(err.Error(), "serving HTTP") {
		t.Errorf("Serve = %v, want an error from the listener", err)
	}
	if s.Ready() {
		t.Error("ready after Serve failed")
	}
}

func TestRequestsAreLoggedWithTheirFields(t *testing.T) {
	s, logs := newServer()

	call(s, http.MethodGet, "/healthz?verbose=1")

	entry := logs.find(t, "GET /healthz 200")
	if entry == nil {
		t.Fatalf("no access log entry in %v", logs.entries(t))
	}
	want := map[string]any{
		"logger": "http.access", "method": "GET", "path": "/healthz", "route": "/healthz",
		"status": 200.0, "client": "192.0.2.1:1234",
	}
	for key, value := range want {
		if entry[key] != value {
			t.Errorf("%s = %v, want %v", key, entry[key], value)
		}
	}
	if _, ok := entry["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms = %v", entry["duration_ms"])
	}
}

func TestAPanickingRouteAnswers500AndIsLogged(t *testing.T) {
	s, logs := newServer()
	s.HandleFunc("GET /fail", func(http.ResponseWriter, *http.Request) { panic("boom") })

	response := call(s, http.MethodGet, "/fail")

	if response.Code != http.StatusInternalServerError {
		t.Errorf("GET /fail = %d, want 500", response.Code)
	}
	entry := logs.find(t, "panic while handling a request")
	if entry == nil || entry["level"] != "ERROR" || entry["panic"] != "boom" {
		t.Fatalf("panic log entry = %v", entry)
	}
	if !strings.Contains(entry["stack"].(string), "server_test.go") {
		t.Error("the stack does not show where the panic happened")
	}
	if logs.find(t, "GET /fail 500") == nil {
		t.Error("the failed request is not in the access log")
	}
}

func TestAnAbortedResponseIsCountedAndAbortedAgain(t *testing.T) {
	s, logs := newServer()
	s.HandleFunc("GET /abort", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic(http.ErrAbortHandler)
	})

	defer func() {
		if failure := recover(); failure != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", failure)
		}
		if logs.find(t, "panic while handling a request") != nil {
			t.Error("an aborted response is logged as a panic")
		}
		if logs.find(t, "GET /abort 500") == nil {
			t.Error("the aborted request is not in the access log")
		}
	}()
	call(s, http.MethodGet, "/abort")
}

func TestTheStatusIsTheFinalOneAfterEarlyHints(t *testing.T) {
	s, logs := newServer()
	s.HandleFunc("GET /hints", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusAccepted)
	})
	client := httptest.NewServer(s)
	defer client.Close()

	response, err := http.Get(client.URL + "/hints")
	if err != nil {
		t.Fatal(err)
	}
	_ = response.Body.Close()

	if response.StatusCode != http.StatusAccepted || logs.find(t, "GET /hints 202") == nil {
		t.Errorf("status %d, logs %v", response.StatusCode, logs.entries(t))
	}
}

func TestARouteThatWritesNothingIsCountedAs200(t *testing.T) {
	s, logs := newServer()
	s.HandleFunc("DELETE /items/{id}", func(http.ResponseWriter, *http.Request) {})

	response := call(s, http.MethodDelete, "/items/7")

	if response.Code != http.StatusOK || logs.find(t, "DELETE /items/7 200") == nil {
		t.Errorf("status %d, logs %v", response.Code, logs.entries(t))
	}
}

func TestRoutesCanFlushThroughTheMeasuringWriter(t *testing.T) {
	s, _ := newServer()
	s.HandleFunc("GET /stream", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "first")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush = %v", err)
		}
	})

	response := call(s, http.MethodGet, "/stream")

	if !response.Flushed || response.Body.String() != "first" {
		t.Errorf("flushed %v, body %q", response.Flushed, response.Body)
	}
}
