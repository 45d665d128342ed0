package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// sample is the value of a metric's series with exactly these labels, 0 if there is none.
// Counters give their value, histograms their number of observations.
func sample(t *testing.T, s *Server, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := s.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
	series:
		for _, metric := range family.GetMetric() {
			if len(metric.GetLabel()) != len(labels) {
				continue
			}
			for _, label := range metric.GetLabel() {
				if labels[label.GetName()] != label.GetValue() {
					continue series
				}
			}
			if histogram := metric.GetHistogram(); histogram != nil {
				return float64(histogram.GetSampleCount())
			}
			return metric.GetCounter().GetValue()
		}
	}
	return 0
}

func requests(t *testing.T, s *Server, method, route, status string) float64 {
	t.Helper()
	labels := map[string]string{"method": method, "route": route, "status": status}
	return sample(t, s, "http_requests_total", labels)
}

func TestMetricsArePrometheusText(t *testing.T) {
	s, _ := newServer()
	call(s, http.MethodGet, "/healthz")

	response := call(s, http.MethodGet, "/metrics")

	if response.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", response.Code)
	}
	if contentType := response.Header().Get("Content-Type"); !strings.HasPrefix(contentType, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", contentType)
	}
	for _, line := range []string{
		"# HELP http_requests_total ",
		`http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		"# TYPE http_request_duration_seconds histogram",
		"# HELP go_goroutines ",
		"# HELP process_cpu_seconds_total ",
	} {
		if !strings.Contains(response.Body.String(), line) {
			t.Errorf("/metrics has no line with %q", line)
		}
	}
}

func TestRequestsAreCountedByRouteAndStatus(t *testing.T) {
	s, _ := newServer()

	for range 3 {
		call(s, http.MethodGet, "/healthz")
	}
	call(s, http.MethodGet, "/readyz")

	if got := requests(t, s, "GET", "/healthz", "200"); got != 3 {
		t.Errorf("GET /healthz 200 counted %v times, want 3", got)
	}
	if got := requests(t, s, "GET", "/readyz", "503"); got != 1 {
		t.Errorf("GET /readyz 503 counted %v times, want 1", got)
	}
}

func TestRequestLatencyIsObserved(t *testing.T) {
	s, _ := newServer()

	call(s, http.MethodGet, "/readyz")

	labels := map[string]string{"method": "GET", "route": "/readyz"}
	if got := sample(t, s, "http_request_duration_seconds", labels); got != 1 {
		t.Errorf("%v observations, want 1", got)
	}
}

func TestUnmatchedRequestsShareOneLabel(t *testing.T) {
	s, _ := newServer()

	call(s, http.MethodGet, "/no/such/path")
	call(s, http.MethodGet, "/another/missing/path")
	call(s, http.MethodPost, "/healthz")

	if got := requests(t, s, "GET", "unmatched", "404"); got != 2 {
		t.Errorf("404 counted %v times, want 2", got)
	}
	if got := requests(t, s, "POST", "unmatched", "405"); got != 1 {
		t.Errorf("405 counted %v times, want 1", got)
	}
	if body := call(s, http.MethodGet, "/metrics").Body.String(); strings.Contains(body, "/no/such/path") {
		t.Error("a raw path became a label")
	}
}

func TestRoutesAreLabelledByTheirPattern(t *testing.T) {
	s, _ := newServer()
	s.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.PathValue("id")))
	})

	first := call(s, http.MethodGet, "/items/1")
	call(s, http.MethodGet, "/items/2")

	if first.Body.String() != "1" {
		t.Errorf("the route saw id %q, want 1", first.Body)
	}
	if got := requests(t, s, "GET", "/items/{id}", "200"); got != 2 {
		t.Errorf("/items/{id} counted %v times, want 2", got)
	}
}

func TestUnknownMethodsShareOneLabel(t *testing.T) {
	s, _ := newServer()
	s.Handle("/any", http.NotFoundHandler())

	call(s, "BREW", "/any")
	call(s, http.MethodDelete, "/any")

	if got := requests(t, s, "OTHER", "/any", "404"); got != 1 {
		t.Errorf("BREW counted %v times as OTHER, want 1", got)
	}
	if got := requests(t, s, "DELETE", "/any", "404"); got != 1 {
		t.Errorf("DELETE counted %v times, want 1", got)
	}
}

func TestEachServerHasItsOwnRegistry(t *testing.T) {
	first, _ := newServer()
	second, _ := newServer()

	call(first, http.MethodGet, "/healthz")

	if requests(t, first, "GET", "/healthz", "200") != 1 || requests(t, second, "GET", "/healthz", "200") != 0 {
		t.Error("the servers share their counts")
	}
}

func TestMetricsOfTheServiceAreServed(t *testing.T) {
	s, _ := newServer()
	orders := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_total", Help: "Orders taken."})
	s.Registerer().MustRegister(orders)

	orders.Add(2)

	if body := call(s, http.MethodGet, "/metrics").Body.String(); !strings.Contains(body, "orders_total 2") {
		t.Error("/metrics does not serve the service's own counter")
	}
}
