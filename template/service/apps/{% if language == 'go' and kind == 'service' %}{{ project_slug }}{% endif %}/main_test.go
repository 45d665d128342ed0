package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runMainVariable makes the test binary run main() instead of the tests: the tests start the
// service as a process of its own, and stop it with a signal.
const runMainVariable = "SERVICE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainVariable) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// syncBuffer collects what the service writes while the test reads it.
type syncBuffer struct {
	mu     sync.Mutex
	buffer bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.String()
}

// environment is a lookupEnv over a map, as os.LookupEnv is over the process's environment.
func environment(variables map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		value, ok := variables[name]
		return value, ok
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = listener.Close() }()
	return listener.Addr().(*net.TCPAddr).Port
}

// waitUntilHealthy polls /healthz until it answers 200, or fails the test after 10 s.
func waitUntilHealthy(t *testing.T, port int, exited <-chan struct{}) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			t.Fatal("the service exited while starting")
		default:
		}
		if response, err := http.Get(url); err == nil {
			_ = response.Body.Close()
			if response.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 10 s", url)
}

// messages are the messages of the JSON log lines, checking that each has the contract fields.
func messages(t *testing.T, output string) []string {
	t.Helper()
	var logged []string
	scanner := bufio.NewScanner(strings.NewReader(output))
	for scanner.Scan() {
		var entry map[string]any
		if err := json.Unmarshal(scanner.Bytes(), &entry); err != nil {
			t.Fatalf("not a JSON object: %q: %v", scanner.Text(), err)
		}
		for _, key := range []string{"time", "level", "logger", "message"} {
			if _, ok := entry[key]; !ok {
				t.Errorf("no %q in %s", key, scanner.Text())
			}
		}
		logged = append(logged, fmt.Sprint(entry["message"]))
	}
	return logged
}

func TestInvalidSettingsStopTheServiceWithAMessage(t *testing.T) {
	var stdout, stderr bytes.Buffer

	code := run(context.Background(), environment(map[string]string{"PORT": "eighty"}), &stdout, &stderr)

	if code != 1 || !strings.HasPrefix(stderr.String(), "configuration error: PORT") {
		t.Errorf("exit code %d, stderr %q", code, stderr.String())
	}
}

func TestRunServesUntilTheContextIsDone(t *testing.T) {
	port := freePort(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout syncBuffer
	exited := make(chan struct{})
	var code int
	go func() {
		defer close(exited)
		code = run(ctx, environment(map[string]string{"PORT": strconv.Itoa(port)}), &stdout, os.Stderr)
	}()
	waitUntilHealthy(t, port, exited)

	stop()
	<-exited

	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	logged := messages(t, stdout.String())
	if logged[0] != "serving HTTP" || logged[len(logged)-1] != "stopped" {
		t.Errorf("logged %q", logged)
	}
}

func TestRunFailsWhenThePortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	var stdout bytes.Buffer

	code := run(context.Background(), environment(map[string]string{"PORT": port}), &stdout, os.Stderr)

	if logged := messages(t, stdout.String()); code != 1 || len(logged) != 1 || logged[0] != "cannot listen" {
		t.Errorf("exit code %d, logged %q", code, logged)
	}
}

func TestServiceExitsCleanlyWhenStopped(t *testing.T) {
	for _, stopSignal := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(stopSignal.String(), func(t *testing.T) {
			port := freePort(t)
			service := exec.Command(os.Args[0], "-test.run=^$")
			service.Env = append(os.Environ(), runMainVariable+"=1", "PORT="+strconv.Itoa(port))
			var stdout syncBuffer
			service.Stdout, service.Stderr = &stdout, os.Stderr
			if err := service.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			var err error
			go func() {
				defer close(exited)
				err = service.Wait()
			}()
			defer func() { _ = service.Process.Kill() }()
			waitUntilHealthy(t, port, exited)

			if signalErr := service.Process.Signal(stopSignal); signalErr != nil {
				t.Fatal(signalErr)
			}
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Fatal("the service did not stop within 10 s")
			}

			if err != nil {
				t.Errorf("the service exited with %v, want exit code 0", err)
			}
			logged := messages(t, stdout.String())
			if len(logged) == 0 || logged[len(logged)-1] != "stopped" {
				t.Errorf("logged %q, want it to end with \"stopped\"", logged)
			}
		})
	}
}
