#!/usr/bin/env python3
"""Lockstep durable inserts: a client that sends one insert and waits for its
answer, against `aerodb start` and against SQLite through Python's sqlite3
module (WAL mode, synchronous=FULL, autocommit), taking turns, 5 rounds.

Run from the repository root after `cargo build --release`, in a scratch folder:
    mkdir -p /tmp/ls && cd /tmp/ls && python3 /path/to/bench/lockstep.py 2000
AERODB (environment) names the aerodb binary (default target/release/aerodb
of the repository this script lives in)."""
import subprocess, time, os, shutil, sqlite3, json, sys
A=os.environ.get('AERODB', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'target', 'release', 'aerodb'))
SCHEMA=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'user_v1.json')
N=int(sys.argv[1]) if len(sys.argv)>1 else 2000
def doc(i): return {'_id':'u%09d'%i,'name':'name-%04d-abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwx'%(i%1000),'age':i%90}
def aero():
    shutil.rmtree('a', ignore_errors=True); os.makedirs('a')
    open('a/aerodb.json','w').write('{"data_dir":"./data"}')
    subprocess.run([A,'init','--config','a/aerodb.json'],capture_output=True)
    shutil.copy(SCHEMA,'a/data/metadata/schemas/')
    p=subprocess.Popen([A,'start','--config','a/aerodb.json'],stdin=subprocess.PIPE,stdout=subprocess.PIPE,stderr=subprocess.DEVNULL)
    lines=[(json.dumps({'op':'insert','schema_id':'user','schema_version':'v1','document':doc(i)})+'\n').encode() for i in range(N+100)]
    for l in lines[:100]:
        p.stdin.write(l); p.stdin.flush(); p.stdout.readline()
    t=time.time()
    for l in lines[100:]:
        p.stdin.write(l); p.stdin.flush(); r=p.stdout.readline(); assert b'"ok"' in r
    dt=time.time()-t; p.stdin.close(); p.wait(); return N/dt
def sq():
    if os.path.exists('s.db'): os.remove('s.db')
    for ext in ('-wal','-shm'):
        if os.path.exists('s.db'+ext): os.remove('s.db'+ext)
    c=sqlite3.connect('s.db', isolation_level=None)
    c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA synchronous=FULL')
    c.execute('CREATE TABLE user(_id TEXT PRIMARY KEY, name TEXT, age INTEGER)'); c.execute('CREATE INDEX n ON user(name)'); c.execute('CREATE INDEX a ON user(age)')
    docs=[doc(i) for i in range(N+100)]
    for d in docs[:100]: c.execute('INSERT INTO user VALUES(?,?,?)',(d['_id'],d['name'],d['age']))
    t=time.time()
    for d in docs[100:]: c.execute('INSERT INTO user VALUES(?,?,?)',(d['_id'],d['name'],d['age']))
    dt=time.time()-t; c.close(); return N/dt
res={'aero':[], 'sqlite':[]}
for r in range(5):
    res['aero'].append(aero()); res['sqlite'].append(sq())
for k,v in res.items():
    v.sort(); print(k, 'median %.0f/s' % v[2], ['%.0f'%x for x in v])
print('ratio %.2f' % (res['aero'][2]/res['sqlite'][2]))
