// "Another client" writing to the DAV server directly (plain HTTP to the private test server on
// 127.0.0.1 with Basic auth), for changes the add-in must see arrive through the agent.
using System;
using System.IO;
using System.Net;
using System.Text;

namespace OpConnect.Outlook.Standin
{
    public class Dav
    {
        readonly string baseUrl;
        readonly string auth;

        public Dav(string baseUrl, string user, string password)
        {
            this.baseUrl = baseUrl.TrimEnd('/');
            auth = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));
        }

        HttpWebRequest Request(string method, string href)
        {
            var r = (HttpWebRequest)WebRequest.Create(href.StartsWith("http") ? href : baseUrl + href);
            r.Method = method;
            r.Headers["Authorization"] = auth;
            r.Proxy = null;
            return r;
        }

        /// <summary>The body and etag at `href`.</summary>
        public Tuple<string, string> Get(string href)
        {
            using (var response = (HttpWebResponse)Request("GET", href).GetResponse())
            using (var reader = new StreamReader(response.GetResponseStream(), Encoding.UTF8))
                return Tuple.Create(reader.ReadToEnd(), response.Headers["ETag"]);
        }

        public void Put(string href, string body, string contentType, string ifMatch)
        {
            var r = Request("PUT", href);
            r.ContentType = contentType;
            if (ifMatch != null) r.Headers["If-Match"] = ifMatch;
            var bytes = Encoding.UTF8.GetBytes(body);
            using (var s = r.GetRequestStream()) s.Write(bytes, 0, bytes.Length);
            using (r.GetResponse()) { }
        }

        public void Delete(string href)
        {
            using (Request("DELETE", href).GetResponse()) { }
        }

        /// <summary>GET, replace one content line (e.g. SUMMARY), PUT with If-Match: another client's edit.</summary>
        public void EditLine(string href, string property, string value)
        {
            // RFC 5545 §3.3.11: TEXT escapes backslash, semicolon, comma and newline.
            value = value.Replace("\\", "\\\\").Replace(";", "\\;").Replace(",", "\\,").Replace("\n", "\\n");
            var current = Get(href);
            var lines = current.Item1.Replace("\r\n", "\n").Split('\n');
            for (int i = 0; i < lines.Length; i++)
                if (lines[i].StartsWith(property + ":") || lines[i].StartsWith(property + ";")) { lines[i] = property + ":" + value; break; }
            Put(href, string.Join("\r\n", lines), "text/calendar; charset=utf-8", current.Item2);
        }
    }
}
