//go:build cgo

package main

// POSIX timers that deliver a SIGEV_PULSE, as QNX's timer_create does
// (the usual way for a QNX server to get a pulse every so often). Linux's
// timer_create has no such notification, so <sys/neutrino.h> maps
// timer_create, timer_settime and timer_delete to these: a SIGEV_PULSE
// timer is a C thread that sleeps until each expiry on the timer's clock
// and sends the pulse with MsgSendPulse; any other sigevent goes to
// Linux's call unchanged (SIGEV_THREAD_ID too: the header's SIGEV_PULSE
// is not QNX's 4, which is Linux's SIGEV_THREAD_ID). Expiries the thread misses (it was not
// scheduled in time) are not counted: the next pulse comes at the next
// period, as with an overrun QNX reports nowhere in a pulse either.

/*
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sys/neutrino.h"
#undef timer_create
#undef timer_settime
#undef timer_delete

typedef struct pulse_timer {
	struct pulse_timer *next; // the list of live pulse timers
	clockid_t clock;
	int coid, prio, code, value;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct timespec when;     // the next expiry, on clock, if armed
	struct timespec interval; // zero: one-shot
	int armed, dead;
} pulse_timer;

static pthread_mutex_t timers_mu = PTHREAD_MUTEX_INITIALIZER;
static pulse_timer *timers;

// find says whether id is a pulse timer of ours (and unlinks it if
// unlink is set).
static pulse_timer *find(timer_t id, int unlink)
{
	pthread_mutex_lock(&timers_mu);
	pulse_timer **pp = &timers;
	while (*pp != NULL && (void *)*pp != (void *)id)
		pp = &(*pp)->next;
	pulse_timer *t = *pp;
	if (t != NULL && unlink)
		*pp = t->next;
	pthread_mutex_unlock(&timers_mu);
	return t;
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void add(struct timespec *a, const struct timespec *b)
{
	a->tv_sec += b->tv_sec;
	a->tv_nsec += b->tv_nsec;
	if (a->tv_nsec >= 1000000000L) {
		a->tv_sec++;
		a->tv_nsec -= 1000000000L;
	}
}

static void *run(void *arg)
{
	pulse_timer *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!t->dead) {
		if (!t->armed) {
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		struct timespec now;
		clock_gettime(t->clock, &now);
		if (before(&now, &t->when)) {
			pthread_cond_timedwait(&t->cv, &t->mu, &t->when);
			continue;
		}
		if (t->interval.tv_sec == 0 && t->interval.tv_nsec == 0) {
			t->armed = 0;
		} else {
			do
				add(&t->when, &t->interval);
			while (!before(&now, &t->when));
		}
		int coid = t->coid, prio = t->prio, code = t->code, value = t->value;
		pthread_mutex_unlock(&t->mu);
		MsgSendPulse(coid, prio, code, value);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

static int pt_create(clockid_t clock, struct sigevent *ev, timer_t *id)
{
	if (ev == NULL || ev->sigev_notify != SIGEV_PULSE)
		return timer_create(clock, ev, id);
	if (id == NULL) {
		errno = EFAULT;
		return -1;
	}
	if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) {
		errno = EINVAL;
		return -1;
	}
	pulse_timer *t = calloc(1, sizeof *t);
	if (t == NULL) {
		errno = EAGAIN;
		return -1;
	}
	t->clock = clock;
	t->coid = ev->sigev_coid;
	t->prio = ev->sigev_priority;
	t->code = ev->sigev_code;
	t->value = ev->sigev_value.sival_int;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, clock);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&t->mu, NULL);
	if (pthread_create(&t->th, NULL, run, t) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		free(t);
		errno = EAGAIN;
		return -1;
	}
	pthread_mutex_lock(&timers_mu);
	t->next = timers;
	timers = t;
	pthread_mutex_unlock(&timers_mu);
	*id = (timer_t)t;
	return 0;
}

static int bad_ts(const struct timespec *ts)
{
	return ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L;
}

static int pt_settime(timer_t id, int flags, const struct itimerspec *v, struct itimerspec *ov)
{
	pulse_timer *t = find(id, 0);
	if (t == NULL)
		return timer_settime(id, flags, v, ov);
	if (v == NULL) {
		errno = EFAULT;
		return -1;
	}
	if (bad_ts(&v->it_value) || bad_ts(&v->it_interval)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&t->mu);
	if (ov != NULL) {
		memset(ov, 0, sizeof *ov);
		ov->it_interval = t->interval;
		if (t->armed) {
			struct timespec now;
			clock_gettime(t->clock, &now);
			if (before(&now, &t->when)) {
				ov->it_value.tv_sec = t->when.tv_sec - now.tv_sec;
				ov->it_value.tv_nsec = t->when.tv_nsec - now.tv_nsec;
				if (ov->it_value.tv_nsec < 0) {
					ov->it_value.tv_sec--;
					ov->it_value.tv_nsec += 1000000000L;
				}
			}
		}
	}
	t->interval = v->it_interval;
	t->armed = v->it_value.tv_sec != 0 || v->it_value.tv_nsec != 0;
	if (t->armed) {
		if (flags & TIMER_ABSTIME) {
			t->when = v->it_value;
		} else {
			clock_gettime(t->clock, &t->when);
			add(&t->when, &v->it_value);
		}
	}
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static int pt_delete(timer_t id)
{
	pulse_timer *t = find(id, 1);
	if (t == NULL)
		return timer_delete(id);
	pthread_mutex_lock(&t->mu);
	t->dead = 1;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->th, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
	return 0;
}

// The calls a program makes (<sys/neutrino.h> maps timer_* to these):
// like every call of the API they clear the thread's TimerTimeout on
// return, as QNX's kernel calls do.
extern void gsqnx_tt_done(void);

int gsqnx_timer_create(clockid_t clock, struct sigevent *ev, timer_t *id)
{
	int r = pt_create(clock, ev, id);
	gsqnx_tt_done();
	return r;
}

int gsqnx_timer_settime(timer_t id, int flags, const struct itimerspec *v, struct itimerspec *ov)
{
	int r = pt_settime(id, flags, v, ov);
	gsqnx_tt_done();
	return r;
}

int gsqnx_timer_delete(timer_t id)
{
	int r = pt_delete(id);
	gsqnx_tt_done();
	return r;
}
*/
import "C"
