// Package kafkatest gives tests a Kafka cluster: by default an in-process
// kfake broker on 127.0.0.1 (random ports, state on disk so it can be
// stopped and started again on the same address), or, when
// EDGEWARD_TEST_KAFKA=host:port[,host:port] is set, a real Apache Kafka
// with per-test topic names. Tests are written once against Cluster and
// run against either.
package kafkatest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// EnvVar names the environment variable that points the tests at a real
// cluster.
const EnvVar = "EDGEWARD_TEST_KAFKA"

type options struct {
	topics     map[string]int32
	brokers    int
	mechanism  string
	user, pass string
	tls        bool
	blackhole  bool
}

// Option configures Start.
type Option func(*options)

// Topic creates a topic with the given number of partitions. Use
// Cluster.Topic for its name on the cluster.
func Topic(name string, partitions int) Option {
	return func(o *options) { o.topics[name] = int32(partitions) }
}

// Brokers sets the number of in-process brokers (default 1).
func Brokers(n int) Option { return func(o *options) { o.brokers = n } }

// SASL requires authentication with mechanism ("PLAIN", "SCRAM-SHA-256"
// or "SCRAM-SHA-512") as user/pass. The in-process broker only.
func SASL(mechanism, user, pass string) Option {
	return func(o *options) { o.mechanism, o.user, o.pass = mechanism, user, pass }
}

// TLS serves TLS with a certificate for 127.0.0.1 from a fresh CA; see
// Cluster.CAFile. The in-process broker only.
func TLS() Option { return func(o *options) { o.tls = true } }

// Blackhole makes the in-process broker acknowledge records without
// keeping them, so that benchmarks measure the client. Nothing can be read
// back. On a real cluster it has no effect.
func Blackhole() Option { return func(o *options) { o.blackhole = true } }

// Cluster is a running test cluster.
type Cluster struct {
	t      testing.TB
	admin  *kgo.Client // groupLag's client, made on first use
	opts   options
	real   bool
	suffix string // appended to topic names on a real cluster
	dir    string // kfake state
	caFile string
	tlsCfg *tls.Config // the server's (kfake) configuration

	mu    sync.Mutex
	fake  *kfake.Cluster
	addrs []string
}

// Start starts (or, with EDGEWARD_TEST_KAFKA, connects to) a cluster and
// creates the topics; it is torn down when the test ends.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	o := options{topics: map[string]int32{}, brokers: 1}
	for _, f := range opts {
		f(&o)
	}
	c := &Cluster{t: t, opts: o}
	if env := os.Getenv(EnvVar); env != "" {
		if o.mechanism != "" || o.tls {
			t.Skipf("kafkatest: %s is set; SASL and TLS tests need the in-process broker", EnvVar)
		}
		c.real = true
		c.addrs = strings.Split(env, ",")
		var rnd [4]byte
		rand.Read(rnd[:])
		c.suffix = "." + regexp.MustCompile(`[^a-zA-Z0-9._-]+`).ReplaceAllString(t.Name(), "_") + "." + hex.EncodeToString(rnd[:])
		c.createTopics()
		t.Cleanup(c.deleteTopics)
		return c
	}
	c.dir = t.TempDir()
	if o.tls {
		c.makeCerts()
	}
	c.startFake(make([]int, o.brokers))
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.fake != nil {
			c.fake.Close()
			c.fake = nil
		}
	})
	return c
}

func (c *Cluster) startFake(ports []int) {
	c.t.Helper()
	kopts := []kfake.Opt{kfake.Ports(ports...), kfake.DataDir(c.dir), kfake.DefaultNumPartitions(1)}
	for name, n := range c.opts.topics {
		kopts = append(kopts, kfake.SeedTopics(n, name))
	}
	if c.opts.mechanism != "" {
		kopts = append(kopts, kfake.EnableSASL(), kfake.Superuser(c.opts.mechanism, c.opts.user, c.opts.pass))
	}
	if c.tlsCfg != nil {
		kopts = append(kopts, kfake.TLS(c.tlsCfg))
	}
	if c.opts.blackhole {
		kopts = append(kopts, kfake.BlackholeProduce())
	}
	var err error
	// A restarted broker rebinds its old port, which a closing
	// connection can hold for a moment.
	for range 50 {
		var f *kfake.Cluster
		if f, err = kfake.NewCluster(kopts...); err == nil {
			c.mu.Lock()
			c.fake, c.addrs = f, f.ListenAddrs()
			c.mu.Unlock()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("kafkatest: starting kfake: %v", err)
}

// Addrs returns the brokers' host:port addresses.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.addrs...)
}

// Real reports whether the cluster is a real Kafka (EDGEWARD_TEST_KAFKA).
func (c *Cluster) Real() bool { return c.real }

// Topic returns a topic's name on the cluster: on a real cluster each test
// gets its own topics.
func (c *Cluster) Topic(name string) string { return name + c.suffix }

// CAFile returns the PEM file of the CA that signed the broker's
// certificate (TLS option), or "".
func (c *Cluster) CAFile() string { return c.caFile }

// Stop stops the in-process broker: connections are refused until
// Restart. On a real cluster the test is skipped.
func (c *Cluster) Stop() {
	c.t.Helper()
	if c.real {
		c.t.Skipf("kafkatest: stopping the broker needs the in-process broker (%s is set)", EnvVar)
	}
	c.mu.Lock()
	f := c.fake
	c.fake = nil
	c.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// Restart starts the stopped broker again on the same addresses, with the
// records it held.
func (c *Cluster) Restart() {
	c.t.Helper()
	var ports []int
	for _, a := range c.Addrs() {
		_, p, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	c.startFake(ports)
}

// Record is one Kafka record as read back.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// Client returns a franz-go client for the cluster (with its SASL and TLS
// settings), closed when the test ends.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	all := []kgo.Opt{kgo.SeedBrokers(c.Addrs()...), kgo.RequestRetries(3), kgo.RetryTimeout(5 * time.Second)}
	if c.opts.mechanism != "" {
		all = append(all, kgo.SASL(c.mechanism()))
	}
	if c.caFile != "" {
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(c.caFile)
		pool.AppendCertsFromPEM(pem)
		all = append(all, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		c.t.Fatalf("kafkatest: client: %v", err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func (c *Cluster) mechanism() sasl.Mechanism {
	switch c.opts.mechanism {
	case "PLAIN":
		return plain.Auth{User: c.opts.user, Pass: c.opts.pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.opts.user, Pass: c.opts.pass}.AsSha256Mechanism()
	}
	return scram.Auth{User: c.opts.user, Pass: c.opts.pass}.AsSha512Mechanism()
}

// Records reads every record of topic (a name from Topic) up to its end
// offsets at the time of the call, partition by partition in offset order.
func (c *Cluster) Records(topic string) []Record {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := c.Client()
	ends, err := c.endOffsets(ctx, admin, topic)
	if err != nil {
		c.t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	want := 0
	for _, e := range ends {
		want += int(e)
	}
	if want == 0 {
		return nil
	}
	cl := c.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	byPart := map[int32][]Record{}
	n := 0
	for n < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("kafkatest: read %d of %d records of %s before the timeout", n, want, topic)
		}
		fs.EachError(func(_ string, p int32, err error) { c.t.Logf("kafkatest: fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			byPart[r.Partition] = append(byPart[r.Partition], Record{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: h})
			n++
		})
	}
	var out []Record
	for p := range int32(len(ends)) {
		out = append(out, byPart[p]...)
	}
	return out
}

// endOffsets returns the high watermark of each partition of topic.
func (c *Cluster) endOffsets(ctx context.Context, cl *kgo.Client, topic string) ([]int64, error) {
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("metadata: %d topics", len(mresp.Topics))
	}
	if err := kerr.ErrorForCode(mresp.Topics[0].ErrorCode); err != nil {
		return nil, err
	}
	n := len(mresp.Topics[0].Partitions)
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range int32(n) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	ends := make([]int64, n)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("partition %d: %w", p.Partition, err)
			}
			ends[p.Partition] = p.Offset
		}
	}
	return ends, nil
}

func (c *Cluster) createTopics() {
	c.t.Helper()
	if len(c.opts.topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for name, n := range c.opts.topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.Topic(name), n, -1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, c.Client())
	if err != nil {
		c.t.Fatalf("kafkatest: creating topics: %v", err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			c.t.Fatalf("kafkatest: creating topic %s: %v", rt.Topic, err)
		}
	}
}

func (c *Cluster) deleteTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		return
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteTopicsRequest()
	for name := range c.opts.topics {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(c.Topic(name))
		req.Topics = append(req.Topics, rt)
		req.TopicNames = append(req.TopicNames, c.Topic(name))
	}
	req.RequestWith(ctx, cl) // best effort: the topics are uniquely named
}

// makeCerts writes a CA and a server certificate for 127.0.0.1 signed by
// it, for the TLS option.
func (c *Cluster) makeCerts() {
	c.t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafkatest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		c.t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		c.t.Fatal(err)
	}
	c.tlsCfg = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	c.caFile = filepath.Join(c.t.TempDir(), "ca.pem")
	if err := os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// groupLag is the records of topic past group's committed offsets, or -1
// while that is not known yet: before the group has committed an offset
// for every non-empty partition, or while its coordinator is loading.
func (c *Cluster) groupLag(group, topic string) int64 {
	c.t.Helper()
	ctx := context.Background()
	if c.admin == nil {
		c.admin = c.Client()
	}
	cl := c.admin
	ends, err := c.endOffsets(ctx, cl, topic)
	if err != nil {
		c.t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	for p := range ends {
		rt.Partitions = append(rt.Partitions, int32(p))
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		c.t.Fatalf("kafkatest: committed offsets of %s: %v", group, err)
	}
	if resp.ErrorCode != 0 {
		return -1
	}
	var lag int64
	seen := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			seen++
			switch {
			case p.ErrorCode != 0:
				return -1
			case p.Offset < 0: // nothing committed: fine only for an empty partition
				if ends[p.Partition] > 0 {
					return -1
				}
			default:
				lag += ends[p.Partition] - p.Offset
			}
		}
	}
	if seen != len(ends) {
		return -1
	}
	return lag
}

// WaitCommitted waits until each group has committed every record of its
// topic; pairs are group, topic, group, topic, ...
func (c *Cluster) WaitCommitted(timeout time.Duration, pairs ...string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, lags := true, make([]int64, 0, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			l := c.groupLag(pairs[i], pairs[i+1])
			lags = append(lags, l)
			done = done && l == 0
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("kafkatest: not committed after %v: lags %v of %v", timeout, lags, pairs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FastGroups lets the in-process broker accept consumer-group session
// timeouts below Kafka's 6 s minimum, so tests notice a vanished member
// in a second. A real cluster is left alone.
func (c *Cluster) FastGroups() {
	c.t.Helper()
	if c.real {
		return
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeBroker
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "group.min.session.timeout.ms", kmsg.StringPtr("200")
	r.Configs = append(r.Configs, cfg)
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(context.Background(), c.Client())
	if err == nil && len(resp.Resources) == 1 {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		c.t.Fatalf("kafkatest: lowering the minimum session timeout: %v", err)
	}
}
