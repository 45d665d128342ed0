package storage

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeS3 answers the three calls the job makes, path-style (/bucket/key), as S3 does. The job's
// own tests run against a real S3-compatible server; this checks the requests and the errors.
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string][]byte
	// requests are "METHOD path" of every request, and hosts the Host headers.
	requests []string
	hosts    []string
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, code)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.hosts = append(f.hosts, r.Host)
	switch {
	case strings.HasPrefix(r.URL.Path, "/forbidden/"):
		s3Error(w, http.StatusForbidden, "AccessDenied")
		return
	case strings.HasPrefix(r.URL.Path, "/no-bucket/"):
		s3Error(w, http.StatusNotFound, "NoSuchBucket")
		return
	case strings.HasPrefix(r.URL.Path, "/broken/"):
		s3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable")
		return
	}
	switch r.Method {
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		f.objects[r.URL.Path] = body
		sum := md5.Sum(body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	case http.MethodGet, http.MethodHead:
		body, ok := f.objects[r.URL.Path]
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchKey")
			return
		}
		sum := md5.Sum(body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	default:
		s3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
}

// newClient returns a client of a fake S3, with credentials and no region in the environment.
func newClient(t *testing.T) (*S3, *fakeS3, string) {
	t.Helper()
	fake := &fakeS3{objects: map[string][]byte{}}
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)
	nowhere := filepath.Join(t.TempDir(), "none")
	for name, value := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             nowhere,
		"AWS_SHARED_CREDENTIALS_FILE": nowhere,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(name, value)
	}
	client, err := New(context.Background(), server.URL)
	if err != nil {
		t.Fatal(err)
	}
	return client, fake, strings.TrimPrefix(server.URL, "http://")
}

func TestPutHeadAndGetAnObjectPathStyle(t *testing.T) {
	client, fake, host := newClient(t)
	ctx := context.Background()
	body := []byte("id,amount\n1,10\n")
	sum := md5.Sum(body)

	if err := client.Put(ctx, "drops", "in/a b.csv", body, "text/csv"); err != nil {
		t.Fatal(err)
	}
	etag, size, err := client.Head(ctx, "drops", "in/a b.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, getETag, err := client.Get(ctx, "drops", "in/a b.csv")
	if err != nil {
		t.Fatal(err)
	}

	if etag != hex.EncodeToString(sum[:]) || getETag != etag || size != int64(len(body)) {
		t.Errorf("head: %s %d, get: %s", etag, size, getETag)
	}
	if string(got) != string(body) {
		t.Errorf("body = %q", got)
	}
	want := "[PUT /drops/in/a b.csv HEAD /drops/in/a b.csv GET /drops/in/a b.csv]"
	if fmt.Sprint(fake.requests) != want {
		t.Errorf("requests %v, want %s", fake.requests, want)
	}
	for _, requested := range fake.hosts {
		if requested != host {
			t.Errorf("Host %s: the bucket is in the path, not in the host name (%s)", requested, host)
		}
	}
}

func TestAMissingObjectIsErrNotExist(t *testing.T) {
	client, _, _ := newClient(t)
	ctx := context.Background()

	_, _, headErr := client.Head(ctx, "drops", "missing.csv")
	_, _, getErr := client.Get(ctx, "drops", "missing.csv")

	for _, err := range []error{headErr, getErr} {
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "s3://drops/missing.csv") {
			t.Errorf("error = %v, want fs.ErrNotExist naming the object", err)
		}
	}
}

func TestOtherErrorsAreNotErrNotExist(t *testing.T) {
	client, _, _ := newClient(t)
	ctx := context.Background()

	_, _, head := client.Get(ctx, "no-bucket", "a.csv")
	_, _, get := client.Get(ctx, "forbidden", "a.csv")
	put := client.Put(ctx, "forbidden", "a.csv", []byte("x"), "text/csv")

	for _, err := range []error{head, get, put} {
		if err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), ".csv: ") {
			t.Errorf("error = %v, want an error naming the object, not fs.ErrNotExist", err)
		}
	}
}

func TestUnreachableStorageAnd5xxAreTemporary(t *testing.T) {
	client, _, _ := newClient(t)
	ctx := context.Background()
	_, _, unavailable := client.Get(ctx, "broken", "a.csv")

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	refusing, err := New(ctx, closed.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, _, refused := refusing.Head(ctx, "drops", "a.csv")

	for _, err := range []error{unavailable, refused} {
		if !errors.Is(err, ErrTemporary) || !strings.Contains(err.Error(), "a.csv: ") {
			t.Errorf("error = %v, want ErrTemporary naming the object", err)
		}
	}
	_, _, forbidden := client.Get(ctx, "forbidden", "a.csv")
	_, _, missing := client.Get(ctx, "drops", "missing.csv")
	for _, err := range []error{forbidden, missing} {
		if errors.Is(err, ErrTemporary) {
			t.Errorf("error = %v, want a final error, not ErrTemporary", err)
		}
	}
}
