// Package storage reads and writes objects of S3 or S3-compatible storage (MinIO...) with the
// AWS SDK for Go v2.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// DefaultRegion signs the requests when AWS_REGION is not set: S3-compatible storage accepts it.
const DefaultRegion = "us-east-1"

// S3 is the job's Store on S3.
type S3 struct {
	client *s3.Client
}

// New returns a client of endpoint (S3_ENDPOINT_URL; empty for AWS S3) with path-style
// addressing (http://host/bucket/key), which S3-compatible servers expect. The region and the
// credentials come from the SDK's usual chain: environment, shared files, web identity (IRSA)...
func New(ctx context.Context, endpoint string) (*S3, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	client := s3.NewFromConfig(cfg, func(options *s3.Options) {
		options.UsePathStyle = true
		if endpoint != "" {
			options.BaseEndpoint = aws.String(endpoint)
			// Checksums only where the API requires them, unless configured: not every
			// S3-compatible server knows the newer checksum headers.
			if cfg.RequestChecksumCalculation == aws.RequestChecksumCalculationUnset {
				options.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			}
			if cfg.ResponseChecksumValidation == aws.ResponseChecksumValidationUnset {
				options.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			}
		}
	})
	return &S3{client: client}, nil
}

// Head returns the ETag (without quotes) and the size of an object.
func (s *S3) Head(ctx context.Context, bucket, key string) (string, int64, error) {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", 0, wrap(err, bucket, key)
	}
	return unquote(head.ETag), aws.ToInt64(head.ContentLength), nil
}

// Get returns the content and the ETag (without quotes) of an object.
func (s *S3) Get(ctx context.Context, bucket, key string) ([]byte, string, error) {
	object, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, "", wrap(err, bucket, key)
	}
	defer func() { _ = object.Body.Close() }()
	body, err := io.ReadAll(object.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	return body, unquote(object.ETag), nil
}

// Put writes an object.
func (s *S3) Put(ctx context.Context, bucket, key string, body []byte, contentType string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   &contentType,
	})
	if err != nil {
		return wrap(err, bucket, key)
	}
	return nil
}

// ErrTemporary marks a failure that a later attempt may not meet: the storage could not be
// reached or did not answer in time (after the SDK's own retries), or answered 5xx or 429.
var ErrTemporary = errors.New("temporary storage failure")

// temporary tells whether err is a failure that running the step again may not meet.
func temporary(err error) bool {
	var send *smithyhttp.RequestSendError
	var response *smithyhttp.ResponseError
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &send), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &response):
		status := response.HTTPStatusCode()
		return status >= http.StatusInternalServerError || status == http.StatusTooManyRequests
	default:
		return errors.As(err, &timeout) && timeout.Timeout()
	}
}

// wrap names the object; a missing object (404: NoSuchKey, NotFound) is fs.ErrNotExist and a
// temporary failure ErrTemporary.
func wrap(err error, bucket, key string) error {
	if temporary(err) {
		return fmt.Errorf("s3://%s/%s: %w (%w)", bucket, key, ErrTemporary, err)
	}
	var response *smithyhttp.ResponseError
	if errors.As(err, &response) && response.HTTPStatusCode() == http.StatusNotFound {
		var api smithy.APIError
		// A missing bucket is a setting to fix, not a missing object.
		if !errors.As(err, &api) || api.ErrorCode() != "NoSuchBucket" {
			return fmt.Errorf("s3://%s/%s: %w (%w)", bucket, key, fs.ErrNotExist, err)
		}
	}
	return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
}

func unquote(etag *string) string {
	return strings.Trim(aws.ToString(etag), `"`)
}
