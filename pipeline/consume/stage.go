package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// stage is one consumer group: the flows topic's, or the repartition
// topic's. Each partition it owns runs in its own goroutine (a worker)
// for as long as a group generation lasts; a worker and its rule state
// outlive generations that give the partition back to this instance.
type stage struct {
	c           *Consumer
	name        string
	topic       string
	group       string
	repartition bool
	lag         *prometheus.GaugeVec

	joined   atomic.Bool
	missing  atomic.Bool // the topic does not exist
	commitMu sync.Mutex  // commits share the coordinator connection
	// workers by partition; run touches it between generations only.
	workers map[int]*worker
}

func (s *stage) run(ctx context.Context) error {
	cfg := &s.c.cfg
	log := s.c.log.With("topic", s.topic, "group", s.group)
	debug := kafka.LoggerFunc(func(msg string, args ...any) { log.Debug(fmt.Sprintf(msg, args...)) })
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: s.group, Brokers: cfg.Brokers, Dialer: cfg.Dialer, Topics: []string{s.topic},
		HeartbeatInterval: cfg.HeartbeatInterval, SessionTimeout: cfg.SessionTimeout, RebalanceTimeout: cfg.RebalanceTimeout,
		JoinGroupBackoff: time.Second, WatchPartitionChanges: true, StartOffset: kafka.FirstOffset,
		Logger: debug, ErrorLogger: debug,
	})
	if err != nil {
		return fmt.Errorf("consume: consumer group %s on %s: %w", s.group, s.topic, err)
	}
	s.workers = map[int]*worker{}
	failing := false
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.ownNone()
			// kafka-go retries, after a pause unless the group is
			// rebalancing: warn once per outage.
			if failing || errors.Is(err, kafka.RebalanceInProgress) {
				log.Debug("consumer group", "err", err)
			} else {
				log.Warn("consumer group (retrying)", "err", err)
			}
			failing = !errors.Is(err, kafka.RebalanceInProgress)
			continue
		}
		if len(gen.Assignments[s.topic]) == 0 && s.topicMissing(ctx) {
			// kafka-go ends a generation at once when its topic is
			// unknown, and the group would rejoin in a tight loop.
			s.ownNone()
			s.missing.Store(true)
			if !failing {
				log.Warn("the topic does not exist (retrying)")
			}
			failing = true
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		failing = false
		s.missing.Store(false)
		s.assign(ctx, gen, log)
	}
	// Closing ends the generation: its workers finish their batch,
	// publish what their engines close, commit; then this member leaves.
	cg.Close()
	s.joined.Store(false)
	for p, w := range s.workers {
		if w.ok && !w.flushed {
			w.shutdown(ctx, context.Background())
		}
		w.release()
		delete(s.workers, p)
	}
	return nil
}

// ownNone records that the stage owns no partition, between generations
// (out of the group, or its topic missing). The workers keep their state
// for the partitions they may get back, but not their lag series: summed
// over the fleet, a stale one would count its partition twice once
// another member takes it.
func (s *stage) ownNone() {
	s.joined.Store(false)
	s.c.m.assigned.WithLabelValues(s.topic).Set(0)
	for p := range s.workers {
		s.lag.DeleteLabelValues(partitionLabel(p))
	}
}

// assign starts a worker per partition of a new generation and drops the
// workers of partitions that went to other members.
func (s *stage) assign(ctx context.Context, gen *kafka.Generation, log *slog.Logger) {
	parts := gen.Assignments[s.topic]
	ids := make([]int, 0, len(parts))
	for _, pa := range parts {
		ids = append(ids, pa.ID)
	}
	slices.Sort(ids)
	for p, w := range s.workers {
		if !slices.Contains(ids, p) {
			w.release()
			delete(s.workers, p)
		}
	}
	s.c.m.generations.WithLabelValues(s.topic).Inc()
	s.c.m.assigned.WithLabelValues(s.topic).Set(float64(len(ids)))
	s.joined.Store(true)
	log.Info("joined consumer group", "generation", gen.ID, "member", gen.MemberID, "partitions", ids)
	for _, pa := range parts {
		w := s.workers[pa.ID]
		if w == nil {
			w = newWorker(s, pa.ID)
			s.workers[pa.ID] = w
		}
		gen.Start(func(gctx context.Context) { w.run(ctx, gctx, gen, pa.Offset) })
	}
}

// topicMissing reports whether the broker says the topic does not exist;
// false when it cannot tell.
func (s *stage) topicMissing(ctx context.Context) bool {
	res, err := s.c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.topic}})
	if err != nil {
		return false
	}
	for _, t := range res.Topics {
		if t.Name == s.topic {
			return errors.Is(t.Error, kafka.UnknownTopicOrPartition)
		}
	}
	return false
}

// commit commits a partition's offset in a generation.
func (s *stage) commit(gen *kafka.Generation, partition int, offset int64) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	return gen.CommitOffsets(map[string]map[int]int64{s.topic: {partition: offset}})
}

// offset asks the partition leader for an offset: the first
// (kafka.FirstOffsetOf), the end (kafka.LastOffsetOf: the offset the next
// record will get), or the first offset of a record at or after a time
// (kafka.TimeOffsetOf); -1 when there is none.
func (s *stage) offset(ctx context.Context, req kafka.OffsetRequest) (int64, error) {
	partition := req.Partition
	res, err := s.c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{s.topic: {req}}})
	if err != nil {
		return 0, fmt.Errorf("listing offsets of %s partition %d: %w", s.topic, partition, err)
	}
	for _, po := range res.Topics[s.topic] {
		if po.Partition != partition {
			continue
		}
		if po.Error != nil {
			return 0, fmt.Errorf("listing offsets of %s partition %d: %w", s.topic, partition, po.Error)
		}
		switch req.Timestamp {
		case kafka.FirstOffset:
			return po.FirstOffset, nil
		case kafka.LastOffset:
			return po.LastOffset, nil
		}
		for off := range po.Offsets {
			return off, nil
		}
		return -1, nil
	}
	return 0, fmt.Errorf("listing offsets of %s partition %d: no answer for the partition", s.topic, partition)
}

func partitionLabel(p int) string { return strconv.Itoa(p) }
